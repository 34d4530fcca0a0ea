from tracklane.cli import app

app(prog_name="tracklane")
