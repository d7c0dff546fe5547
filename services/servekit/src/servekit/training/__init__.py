"""Training, registration and promotion of a service's model in MLflow."""
