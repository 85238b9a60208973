
from django.db import migrations


def _content_type_follows(apps, schema_editor):
    # Permissions and admin log entries keep pointing at the plan under its new app.
    content_type = apps.get_model("contenttypes", "ContentType")
    content_type.objects.filter(app_label="billing", model="plan").update(app_label="plans")


class Migration(migrations.Migration):

    dependencies = [
        ('contenttypes', '0002_remove_content_type_name'),
        ('alerts', '0002_plan_moves_to_plans'),
        ('billing', '0003_offsite_line'),
        ('tenants', '0004_plan_moves_to_plans'),
    ]

    operations = [
        # State only: the table billing_plan stays as it is (the model moved from billing to plans).
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.DeleteModel(
                    name='Plan',
                ),
            ],
            database_operations=[],
        ),
        migrations.RunPython(_content_type_follows, migrations.RunPython.noop),
    ]
