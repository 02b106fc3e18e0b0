"""The model server: request models from the contract, model sources, the prediction log, access
rules, the FastAPI app and the uvicorn server that runs it (`<package> serve`)."""
