from ffrt import app

app.run()
