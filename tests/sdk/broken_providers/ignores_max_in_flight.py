"""Advertises maxInFlight 2 but runs any number of requests at once."""

from _demo import provider

from gleitzeit_sdk.description import ProviderDescription

advertised = ProviderDescription.initialize_result
provider.max_in_flight = 1000


def initialize_result(self, limits=None):
    result = advertised(self, limits)
    result["capabilities"]["concurrency"]["maxInFlight"] = 2
    return result


ProviderDescription.initialize_result = initialize_result
provider.run()
