// Which scan verdicts are go-aheads (event_contract/feedback.py, docs/event-contract.md):
// `accepted` and `duplicate` (read again where it already belongs); every other kind —
// wrong_order, wrong_truck, wrong_door, already_dispatched, order_cancelled, unknown_code,
// bad_check_digit, invalid_code — is a refusal the dock must act on.
export const GOOD_VERDICTS = new Set(["accepted", "duplicate"]);

export const isGoodVerdict = (verdict) => GOOD_VERDICTS.has(verdict);
