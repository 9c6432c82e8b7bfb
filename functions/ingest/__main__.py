from functions.common.worker import main
from functions.ingest.handler import SPEC

main(SPEC)
