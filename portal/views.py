from django.contrib.auth.decorators import login_required
from django.db import connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render

from accounts.permissions import STAFF_OR_ACCOUNTING, has_role
from overview import views as overview_views
from portal.api_reference import api_reference


@login_required
def home(request: HttpRequest) -> HttpResponse:
    """Staff and accounting: the overview; everyone else to their own start page."""
    if has_role(request.user, STAFF_OR_ACCOUNTING):
        return overview_views.overview(request)
    return redirect(request.user.home_url())


def healthz(request: HttpRequest) -> JsonResponse:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    return JsonResponse({"ok": True})


@login_required
def api_docs(request: HttpRequest) -> HttpResponse:
    return render(request, "api/reference.html", {"ref": api_reference()})
