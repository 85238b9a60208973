"""Site-wide enforcement of the second factor.

A user who has a second factor gets a session only by passing it: a session that never did
(made by any login form but the portal's, such as the Django admin's) is ended.

The role decorators in accounts.permissions already refuse staff without a TOTP when
``PORTAL_REQUIRE_STAFF_TOTP`` is on; this middleware makes the rule hold for every view,
including any that only uses ``login_required``: such a user can reach the enrolment page,
its set-up steps, sign out, and static files, nothing else.
"""

from __future__ import annotations

from collections.abc import Callable

from django.contrib.auth import logout
from django.contrib.auth.views import redirect_to_login
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect
from django.urls import reverse

from accounts.permissions import second_factor_unproven, totp_required_but_missing
from core.actors import acting_api_key


class SecondFactorPolicyMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        acting_api_key.set(None)  # set again by the API key authentication of this request
        if second_factor_unproven(request):
            # A session that skipped the code (any sign-in but the portal's own): end it.
            logout(request)
            if request.path.startswith("/api/"):
                return JsonResponse({"detail": "Sign in again with your second factor."}, status=401)
            return redirect_to_login(request.get_full_path())
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated and totp_required_but_missing(user):
            # The security page and its enrolment steps live under one prefix.
            allowed = (reverse("accounts:security"), reverse("accounts:logout"), "/static/")
            if not request.path.startswith(allowed):
                if request.path.startswith("/api/"):
                    return JsonResponse(
                        {"detail": "A second factor (TOTP) must be set up first."}, status=403
                    )
                return redirect("accounts:security")
        return self.get_response(request)
