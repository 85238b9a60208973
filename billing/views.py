from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse


@login_required
def periods(request: HttpRequest) -> HttpResponse:
    return HttpResponse("billing: periods (not built yet)")
