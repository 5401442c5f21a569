from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("retrieval", "0001_initial"),
    ]

    operations = [
        migrations.AddField(
            model_name="knowledgeentry",
            name="answer_embedding",
            field=models.BinaryField(
                blank=True,
                help_text="float32 vector of the ticket's answer (same model as ``embedding``); empty without one.",
                null=True,
            ),
        ),
    ]
