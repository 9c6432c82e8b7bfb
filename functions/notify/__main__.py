from functions.common.settings import load_settings
from functions.common.worker import main
from functions.notify.handler import notify_spec

main(notify_spec(load_settings().notify_backoff_s))
