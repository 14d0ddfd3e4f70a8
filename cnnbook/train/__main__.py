"""``python -m cnnbook.train`` / ``torchrun ... -m cnnbook.train``: see ``cnnbook.train.run``."""
from cnnbook.train.run import main

if __name__ == "__main__":
    main()
