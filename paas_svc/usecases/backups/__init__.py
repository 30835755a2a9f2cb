"""Scheduled and off-host backups: schedules and retention run by the host's scheduler,
destinations (a folder, S3), streamed authenticated encryption under a backup key of its own,
restores from a destination and verified restores.

Domain code only: nothing here prints or imports typer/rich. The backups themselves are taken
and restored by paas_svc.usecases.data.DataOps.
"""
