
import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('alerts', '0001_initial'),
        ('plans', '0001_plan_moves_to_plans'),
    ]

    operations = [
        # State only: the table billing_plan stays as it is (the model moved from billing to plans).
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name='planquota',
                    name='plan',
                    field=models.OneToOneField(on_delete=django.db.models.deletion.CASCADE, related_name='quota', to='plans.plan'),
                ),
            ],
            database_operations=[],
        ),
    ]
