"""AWS Lambda entry of the API: API Gateway HTTP API events → the FastAPI app, through Mangum."""

from events.lambda_entry import ApiFunction
from functions.api.app import create_app

handler = ApiFunction(create_app)
