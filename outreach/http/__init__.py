"""The aiohttp surface: app factory, routes, auth, the error middleware, the websocket feed."""
