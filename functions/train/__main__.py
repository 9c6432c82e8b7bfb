from functions.common.worker import main
from functions.train.handler import SPEC

main(SPEC)
