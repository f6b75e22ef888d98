"""Running a job: chunks of images fitted, saved to a content-addressed folder, resumed."""
