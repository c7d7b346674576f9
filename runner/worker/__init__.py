"""The ``python run.py`` process: the consumer and the threads and services around it."""
