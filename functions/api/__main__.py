"""``python -m functions.api``: serve the API with uvicorn on SHENAVA_API_HOST:SHENAVA_API_PORT."""

import uvicorn

from functions.api.app import create_app
from functions.api.http_protocol import protocol_with_head_timeout
from functions.common.logs import configure_logging
from functions.common.settings import load_settings

if __name__ == "__main__":
    settings = load_settings()
    configure_logging(settings.log_level)
    uvicorn.run(
        create_app(settings),
        host=settings.api_host,
        port=settings.api_port,
        log_config=None,
        proxy_headers=False,
        http=protocol_with_head_timeout(settings.http_read_timeout_s),
    )
