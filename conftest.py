"""Root conftest: import our package before the HA test plugin shadows it.

pytest-homeassistant-custom-component puts its own `custom_components` package
first on sys.path once the `hass` fixture starts; importing ours here first makes
HA's loader find Direct Push.
"""

import custom_components.direct_push  # noqa: F401
