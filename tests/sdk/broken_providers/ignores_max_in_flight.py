"""Advertises maxInFlight 2 but runs any number of requests at once."""

from _demo import provider

advertised = provider.initialize_result
provider.max_in_flight = 1000


def initialize_result():
    result = advertised()
    result["capabilities"]["concurrency"]["maxInFlight"] = 2
    return result


provider.initialize_result = initialize_result
provider.run()
