import django.core.validators
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("tickets", "0004_audit_created_at_index"),
    ]

    operations = [
        migrations.AddField(
            model_name="suggestion",
            name="suggestion_confidence",
            field=models.FloatField(
                blank=True,
                help_text="Calibrated chance that the suggested answer is usable; empty when uncalibrated or none.",
                null=True,
                validators=[
                    django.core.validators.MinValueValidator(0.0),
                    django.core.validators.MaxValueValidator(1.0),
                ],
            ),
        ),
        migrations.AddField(
            model_name="suggestion",
            name="abstained",
            field=models.BooleanField(
                default=False,
                help_text="No answer was good enough to suggest (confidence below the company's threshold).",
            ),
        ),
    ]
