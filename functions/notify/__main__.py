from events.worker import main
from functions.common.settings import load_settings
from functions.notify.handler import notify_spec

main(notify_spec(load_settings().notify_backoff_s))
