"""IAM Create Access Key as a Shuffle app: one action, create_access_key.

Thin on purpose: Shuffle's SDK calls the action with every parameter and authentication field
as a string; plugin.shuffle_app reads them as every other door of the action does, runs it
within the time the SDK gives a call, and answers in Shuffle's convention. It never raises.
"""

import os

from shuffle_sdk import AppBase

from plugin import shuffle_app


class IAMCreateAccessKey(AppBase):
    __version__ = "0.1.0"
    app_name = "iam-create-access-key"

    def __init__(self, redis, logger, console_logger=None):
        super().__init__(redis, logger, console_logger)

    def create_access_key(self, **fields):
        return shuffle_app.create_access_key(fields, os.environ)


if __name__ == "__main__":
    IAMCreateAccessKey.run()
