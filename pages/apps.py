from django.apps import AppConfig


class PagesConfig(AppConfig):
    """The applicants' pages at `/`: server-rendered, in Norwegian bokmål and English."""

    name = "pages"
    verbose_name = "Applicant pages"
