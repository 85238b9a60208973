from django.urls import path

import billing.converters  # noqa: F401  (registers <period:...>)
from billing import document_views, views

app_name = "billing"
urlpatterns = [
    path("", views.periods, name="periods"),
    path("periods/<period:period>/", views.period_detail, name="period"),
    path("periods/<period:period>/export.csv", views.period_export, name="export"),
    path("periods/<period:period>/close", views.period_close, name="close"),
    path("invoices/<str:number>/", views.invoice_detail, name="invoice"),
    path("invoices/<str:number>/correct", views.invoice_correct, name="invoice_correct"),
    path("invoices/<str:number>/pdf", document_views.invoice_pdf_download, name="invoice_pdf"),
    path("credit-notes/<str:number>/pdf", document_views.credit_note_pdf_download, name="credit_note_pdf"),
    path("metering/", views.metering, name="metering"),
    path("metering/collect", views.metering_collect, name="collect"),
    path("metering/runs/<int:run_id>/", views.metering_run, name="run"),
    path("plans/", views.plans, name="plans"),
    path("plans/new", views.plan_edit, name="plan_new"),
    path("plans/<int:plan_id>/edit", views.plan_edit, name="plan_edit"),
    path("tenants/<int:tenant_id>/", views.tenant_usage, name="tenant"),
]
