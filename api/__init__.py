"""The HTTP face of relledger: FastAPI routes over the service layer, nothing below it.

Like the CLI, it only parses requests and renders the service's answers (whose JSON
shapes are `projections/views.py`'s), maps error families to statuses in one table
(`api.errors`), and checks an API key on every request (`api.auth`). It never imports
the CLI; `relledger serve` (relledger/cli_serve.py) runs it on uvicorn.
"""
