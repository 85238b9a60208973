from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse


@login_required
def list(request: HttpRequest) -> HttpResponse:
    return HttpResponse("tenants: list (not built yet)")


@login_required
def hosts(request: HttpRequest) -> HttpResponse:
    return HttpResponse("tenants: hosts (not built yet)")
