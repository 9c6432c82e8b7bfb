from events.worker import main
from functions.train.handler import SPEC

main(SPEC)
