"""AWS Lambda entry of notify: job events from its SQS queue, retried with the notify backoff."""

from events.runner import FunctionSpec
from functions.common.lambda_entry import SqsFunction
from functions.common.settings import Settings
from functions.notify.handler import notify_spec


def spec_for(settings: Settings) -> FunctionSpec:
    return notify_spec(settings.notify_backoff_s)


handler = SqsFunction(spec_for)
