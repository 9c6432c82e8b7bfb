"""AWS Lambda entry of ingest: its SQS queue carries the media bucket's S3 notifications."""

from functions.common.lambda_entry import SqsFunction
from functions.ingest.handler import SPEC

handler = SqsFunction(SPEC)
