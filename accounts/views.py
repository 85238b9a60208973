from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse


@login_required
def security(request: HttpRequest) -> HttpResponse:
    return HttpResponse("security settings (not built yet)")
