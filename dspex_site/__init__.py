from dspex_site.startup import report_configuration_errors_in_one_line

report_configuration_errors_in_one_line()

from dspex_site.celery import app as celery_app  # noqa: E402 (the hook must be in place before settings load)

__all__ = ["celery_app"]
