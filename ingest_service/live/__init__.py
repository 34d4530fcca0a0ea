"""The live stream's server side: the database's notifications, fanned out to WebSockets."""
