"""AWS Lambda entry of train: dataset requests from its SQS queue."""

from events.runner import FunctionSpec
from functions.common.lambda_entry import SqsFunction
from functions.common.settings import Settings
from functions.train.handler import SPEC


def spec_for(settings: Settings) -> FunctionSpec:
    return SPEC


handler = SqsFunction(spec_for)
