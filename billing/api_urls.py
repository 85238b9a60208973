from django.urls import path

import billing.converters  # noqa: F401  (registers <period:...>)
from billing import api

urlpatterns = [
    path("periods/", api.PeriodListApi.as_view(), name="billing-api-periods"),
    path("periods/<period:period>/close/", api.PeriodCloseApi.as_view(), name="billing-api-period-close"),
    path("periods/<period:period>/rows/", api.PeriodRowsApi.as_view(), name="billing-api-period-rows"),
    path("invoices/<str:number>/", api.InvoiceDetailApi.as_view(), name="billing-api-invoice"),
    path("invoices/<str:number>/correct/", api.InvoiceCorrectApi.as_view(), name="billing-api-invoice-correct"),
    path("tenants/<int:tenant_id>/invoices/", api.TenantInvoicesApi.as_view(), name="billing-api-tenant-invoices"),
    path("tenants/<int:tenant_id>/usage/", api.TenantUsageApi.as_view(), name="billing-api-tenant-usage"),
    path("metering/latest/", api.MeteringLatestApi.as_view(), name="billing-api-metering-latest"),
    path("metering/collect/", api.MeteringCollectApi.as_view(), name="billing-api-metering-collect"),
]
