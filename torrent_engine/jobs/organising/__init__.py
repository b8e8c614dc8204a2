"""What jobs are organised by: categories, tags, job numbers and each job's features."""
