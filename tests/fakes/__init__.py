"""Local fakes of the third-party services our integrations call, served on 127.0.0.1."""
