"""Feast at inference time: store adapter, online fetch by feature service, streaming velocity."""
