"""The trained models as MLflow pyfuncs (``mlflow.pyfunc.load_model("models:/<name>/<version>")``):
each module is the code MLflow logs with a model (code, not a pickle). They load the models,
move them to a device and run the inference pipelines, so they sit above ``models`` and
``inference``, which know nothing of serving."""
