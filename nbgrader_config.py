"""nbgrader settings for the course: `solutions/` is the source, `exercises/` the release.

Used by `ftcourse release` (generate the exercises), `ftcourse grade` (autograde submissions)
and nbgrader's own commands run from this folder.
"""

c = get_config()  # noqa: F821 (provided by nbgrader when it loads this file)

c.CourseDirectory.course_id = "ftcourse"
c.CourseDirectory.source_directory = "solutions"
c.CourseDirectory.release_directory = "exercises"

# The instructor's trusted checks stay out of the release and out of every graded folder
# (nbgrader's defaults, then ours).
c.CourseDirectory.ignore = [".ipynb_checkpoints", "*.pyc", "__pycache__", "feedback",
                            "trusted_checks.py"]

# The first cell imports TensorFlow, which takes up to a minute on a busy laptop.
c.Execute.timeout = 120

# A grade or test cell deleted from a submission comes back from the gradebook when grading.
c.OverwriteCells.add_missing_cells = True

# Replace each solution with a stub that fails, so an untouched exercise scores zero.
c.ClearSolutions.code_stub = {"python": "# YOUR CODE HERE\nraise NotImplementedError()"}
c.ClearSolutions.text_stub = "YOUR ANSWER HERE"
