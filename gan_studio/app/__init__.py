"""The GAN Studio web app: ``build_app(create_studio(...))`` gives the Gradio Blocks (see app.py)."""

from gan_studio.app.studio import Studio, create_studio
from gan_studio.app.ui import build_app, launch_options

__all__ = ["Studio", "build_app", "create_studio", "launch_options"]
