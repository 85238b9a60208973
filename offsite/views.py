from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse


@login_required
def overview(request: HttpRequest) -> HttpResponse:
    return HttpResponse("offsite: overview (not built yet)")
