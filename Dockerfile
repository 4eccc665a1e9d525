FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
WORKDIR /app
COPY requirements.txt .
RUN pip install --no-cache-dir -r requirements.txt
COPY . .
# Static files (admin CSS, Swagger UI) are collected into the image; WhiteNoise serves them.
# The key only lets the settings load for this build step; it is not kept in the image.
RUN SECRET_KEY=collectstatic-only python manage.py collectstatic --noinput
RUN useradd --create-home dspex && mkdir -p /app/var && chown -R dspex /app/var
USER dspex
