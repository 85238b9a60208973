
import django.core.validators
from decimal import Decimal
from django.db import migrations, models


class Migration(migrations.Migration):

    initial = True

    dependencies = [
        ('billing', '0003_offsite_line'),
    ]

    operations = [
        # State only: the table billing_plan stays as it is (the model moved from billing to plans).
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name='Plan',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('name', models.CharField(max_length=64, unique=True)),
                        ('currency', models.CharField(default='EUR', max_length=3, validators=[django.core.validators.RegexValidator('^[A-Z]{3}$', 'An ISO 4217 code, e.g. EUR.')])),
                        ('metric', models.CharField(choices=[('logical', 'Logical bytes (all snapshots)'), ('latest', 'Latest snapshot per group'), ('physical', 'Physical estimate (apportioned)')], default='logical', max_length=16)),
                        ('included_gib', models.DecimalField(decimal_places=2, default=Decimal('0'), max_digits=12, validators=[django.core.validators.MinValueValidator(Decimal('0'))])),
                        ('price_per_gib', models.DecimalField(decimal_places=6, default=Decimal('0'), help_text='Price per GiB-month above the included GiB.', max_digits=12, validators=[django.core.validators.MinValueValidator(Decimal('0'))])),
                        ('base_fee', models.DecimalField(decimal_places=2, default=Decimal('0'), max_digits=12, validators=[django.core.validators.MinValueValidator(Decimal('0'))])),
                        ('offsite_price_per_gib', models.DecimalField(blank=True, decimal_places=6, help_text="Price per GiB-month of the tenant's offsite copy (logical bytes in the offsite namespace). Empty: offsite copies are not billed as a line of their own.", max_digits=12, null=True, validators=[django.core.validators.MinValueValidator(Decimal('0'))])),
                        ('minimum_charge', models.DecimalField(decimal_places=2, default=Decimal('0'), max_digits=12, validators=[django.core.validators.MinValueValidator(Decimal('0'))])),
                        ('is_active', models.BooleanField(default=True, help_text='Retired plans keep billing their tenants but are not offered.')),
                        ('created_at', models.DateTimeField(auto_now_add=True)),
                        ('updated_at', models.DateTimeField(auto_now=True)),
                    ],
                    options={
                        'db_table': 'billing_plan',
                        'ordering': ['name'],
                    },
                ),
            ],
            database_operations=[],
        ),
    ]
