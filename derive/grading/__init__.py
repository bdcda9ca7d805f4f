"""Grading a class set: a gradebook of every student's submission, and a Moodle question bank."""
