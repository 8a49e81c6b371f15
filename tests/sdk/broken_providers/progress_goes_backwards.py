"""Reports progress counting down instead of up."""

from _demo import provider

from gleitzeit_sdk import RequestContext


async def countdown(self, progress, total=None, message=None):
    if self.progress_token is not None:
        await self._notify("$/progress", {"token": self.progress_token, "progress": (total or 100) - progress})


RequestContext.progress = countdown
provider.run()
