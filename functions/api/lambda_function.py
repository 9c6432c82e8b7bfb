"""AWS Lambda entry of the API: API Gateway HTTP API events → the FastAPI app, through Mangum."""

from functions.api.app import create_app
from functions.common.lambda_entry import ApiFunction

handler = ApiFunction(create_app)
