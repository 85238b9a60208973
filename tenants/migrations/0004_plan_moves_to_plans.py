
import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('plans', '0001_plan_moves_to_plans'),
        ('tenants', '0003_onboardingrun_next_attempt_at'),
    ]

    operations = [
        # State only: the table billing_plan stays as it is (the model moved from billing to plans).
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name='tenant',
                    name='plan',
                    field=models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.PROTECT, related_name='tenants', to='plans.plan'),
                ),
            ],
            database_operations=[],
        ),
    ]
