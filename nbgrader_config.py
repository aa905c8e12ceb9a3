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

# Replace each solution with a stub that fails, so an untouched exercise scores zero, and says
# which part is unanswered (ftcourse's ClearSolutions fills in {part}: "Part A").
from nbgrader.converters import GenerateAssignment  # noqa: E402

from ftcourse.grading.release import PartStubs  # noqa: E402

c.GenerateAssignment.preprocessors = [
    PartStubs if step.__name__ == "ClearSolutions" else step
    for step in GenerateAssignment.class_traits()["preprocessors"].default()]
c.ClearSolutions.code_stub = {
    "python": "# YOUR CODE HERE: {part} (replace these two lines with your answer)\n"
              "raise NotImplementedError(\"{part} is not answered yet: write it in its cell\")"}
c.ClearSolutions.text_stub = "YOUR ANSWER HERE"
