from django.http import HttpRequest


def roles(request: HttpRequest) -> dict[str, object]:
    """Expose the signed-in user's role flags to every template (navigation)."""
    user = getattr(request, "user", None)
    authenticated = bool(user and user.is_authenticated)
    return {
        "is_msp_staff": authenticated and user.is_msp_staff,
        "is_msp_admin": authenticated and user.is_msp_admin,
        "is_accounting": authenticated and user.is_accounting,
        "is_client": authenticated and user.is_client,
    }
