{{ cookiecutter.description | python_docstring }}
