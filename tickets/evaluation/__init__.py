"""Evaluation of Switchboard on a company's own history (``python manage.py evaluate``).

An isolated workspace (its own knowledge base, label model and taxonomy under the output folder; no
database rows, no live index) is built from HISTORY, then every TEST ticket goes through the steps
production uses: text preparation (redaction), embedding, retrieval, the label model, the language
model where the mode asks for it, and the decision. Results are written as they come, so an
interrupted run resumes where it stopped.
"""
